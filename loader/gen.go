package loader

// The BPF objects and their Go bindings are generated and committed, so that
// `go build` needs no clang. `make generate` runs this with the pinned clang;
// `make check-generated` fails if the committed files differ from a fresh run.
//
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags "$BPF_CFLAGS -mcpu=v3" -target bpfel -type lb_reason -type lb_event -type lb_backend_state -type lb_vip_key -type lb_vip_meta -type lb_vip_info -type lb_backend -type lb_flow_key -type lb_flow -type lb_counter -type lb_config lb ../bpf/lb.bpf.c -- -I../bpf
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags "$BPF_CFLAGS -mcpu=v3" -target bpfel decap ../bpf/decap.bpf.c -- -I../bpf
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel -type bench_stat -type bench_frame bench ../bpf/bench.bpf.c -- -I../bpf
