// The kube-apiserver's side of the authorization webhook, for bench/kube.ts: SubjectAccessReviews
// POSTed open-loop at a fixed rate with Go's net/http client over kept-alive mutual-TLS
// connections, as the apiserver's webhook client (client-go's REST client on net/http) sends them.
// A Node client in the benchmark's own process added more tail latency than the server it
// measured. Reads its settings as JSON on stdin; writes the latencies (ms) as JSON on stdout.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

type settings struct {
	URL     string   `json:"url"`
	CA      string   `json:"ca"`
	Cert    string   `json:"cert"`
	Key     string   `json:"key"`
	Reviews []string `json:"reviews"`
	Rate    int      `json:"rate"`
	Warmup  int      `json:"warmup"`
	Total   int      `json:"total"`
}

type result struct {
	Samples []float64 `json:"samples"`
	Allowed int       `json:"allowed"`
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func main() {
	var s settings
	if err := json.NewDecoder(os.Stdin).Decode(&s); err != nil {
		fail(err)
	}
	pair, err := tls.X509KeyPair([]byte(s.Cert), []byte(s.Key))
	if err != nil {
		fail(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(s.CA)) {
		fail(errors.New("no CA certificate"))
	}
	// The chain is checked against the CA; the serving certificate names the node, not the address.
	verify := func(state tls.ConnectionState) error {
		if len(state.PeerCertificates) == 0 {
			return errors.New("no server certificate")
		}
		intermediates := x509.NewCertPool()
		for _, c := range state.PeerCertificates[1:] {
			intermediates.AddCert(c)
		}
		_, err := state.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates})
		return err
	}
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{
				Certificates:       []tls.Certificate{pair},
				InsecureSkipVerify: true,
				VerifyConnection:   verify,
			},
			// client-go's default (utilnet.SetTransportDefaults).
			MaxIdleConnsPerHost: 25,
		},
	}
	interval := time.Second / time.Duration(s.Rate)
	run := func(count int, keep bool) (result, error) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		var firstErr error
		out := result{Samples: make([]float64, 0, count)}
		start := time.Now()
		for i := 0; i < count; i++ {
			time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
			wg.Add(1)
			go func(review string) {
				defer wg.Done()
				sent := time.Now()
				resp, err := client.Post(s.URL, "application/json", bytes.NewReader([]byte(review)))
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("authorize: %d %s", resp.StatusCode, body)
					}
				}
				elapsed := float64(time.Since(sent).Nanoseconds()) / 1e6
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					return
				}
				if keep {
					out.Samples = append(out.Samples, elapsed)
				}
				if strings.Contains(string(body), `"allowed":true`) {
					out.Allowed++
				}
			}(s.Reviews[i%len(s.Reviews)])
		}
		wg.Wait()
		return out, firstErr
	}
	// Warm-up at the same rate first: connections opened, code paths compiled.
	if _, err := run(s.Warmup, false); err != nil {
		fail(err)
	}
	measured, err := run(s.Total, true)
	if err != nil {
		fail(err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(measured); err != nil {
		fail(err)
	}
}
