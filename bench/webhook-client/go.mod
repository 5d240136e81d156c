module orca.local/bench/webhook-client

go 1.22
