# ucp-kv: Debian's etcd (dynamically linked against glibc, which the busybox base carries) on the
# busybox rootfs. Built by scripts/build-images.sh with BASE=orca/busybox:<hash>.
ARG BASE
FROM ${BASE}
COPY etcd /usr/local/bin/etcd
VOLUME /data
EXPOSE 2379 2380
ENTRYPOINT ["/usr/local/bin/etcd"]
CMD ["--data-dir", "/data"]
