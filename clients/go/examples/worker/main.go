// Command worker is an example Go worker for Stella Orchestrator.
//
// Against the demo stack (`make up`, then `make demo` prints the simulated upstream URL):
//
//	go run ./examples/worker -target 127.0.0.1:50052 -token "$TOKEN" -upstream http://127.0.0.1:PORT
//
// serves the demo pipeline's job types (advisory.ingest, vex.ingest, sbom.scan,
// policy.evaluate) the way demo/worker.py does. With -types it instead serves the given job
// types with an echo handler that reports 50 % progress, records one artifact
// ("go:<job id>:<key>") and returns {"worker", "key", "sdk", "artifact_digest"}; the
// cross-language tests use that mode; -handler noop makes it return {} at once instead
// (make bench's burn-down).
// SIGTERM drains gracefully; a second signal stops at once.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/stella-ops/orchestrator/clients/go/worker"
)

var hosts = map[string]string{
	"nvd": "services.nvd.nist.gov", "osv": "api.osv.dev",
	"ghsa": "api.github.com", "csaf-vendor": "csaf.vendor.example",
}

func main() {
	target := flag.String("target", "127.0.0.1:50052", "leases service: host:port, a comma list of replicas, or dns:///name:port")
	token := flag.String("token", os.Getenv("STELLA_TOKEN"), "worker token (scope orch:work); default $STELLA_TOKEN")
	upstream := flag.String("upstream", "", "base URL of the demo's simulated upstream")
	types := flag.String("types", "", "comma-separated job types for the echo handler (instead of the demo types)")
	concurrency := flag.Int("concurrency", 20, "handlers running at once")
	workerID := flag.String("worker-id", "", "worker id (default hostname-pid-random)")
	delay := flag.Duration("delay", 30*time.Millisecond, "echo handler: time each job takes")
	handler := flag.String("handler", "echo", "handler for -types: echo, or noop (returns {} at once)")
	tlsCA := flag.String("tls-ca", os.Getenv("STELLA_TLS_CA_FILE"), "PEM CA file: connect over TLS trusting it; default $STELLA_TLS_CA_FILE (unset: plaintext)")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))

	opts := []worker.Option{worker.WithToken(*token), worker.WithConcurrency(*concurrency)}
	if *workerID != "" {
		opts = append(opts, worker.WithWorkerID(*workerID))
	}
	if *tlsCA != "" {
		opts = append(opts, worker.WithTLSCAFile(*tlsCA))
	}
	w, err := worker.New(*target, opts...)
	if err != nil {
		fail(err)
	}
	switch {
	case *types != "":
		h := echo(w.WorkerID(), *delay)
		switch *handler {
		case "echo":
		case "noop":
			h = noop
		default:
			fail(fmt.Errorf("-handler %q: give echo or noop", *handler))
		}
		for _, t := range strings.Split(*types, ",") {
			must(w.Handle(t, h))
		}
	case *upstream != "":
		registerDemo(w, *upstream)
	default:
		fail(fmt.Errorf("give -upstream (demo job types) or -types (echo handler)"))
	}
	fmt.Fprintf(os.Stderr, "go worker %s serving on %s\n", w.WorkerID(), *target)
	if err := w.RunWithSignals(context.Background()); err != nil {
		fail(err)
	}
}

func noop(context.Context, *worker.Job) (map[string]any, error) {
	return map[string]any{}, nil
}

func echo(workerID string, delay time.Duration) worker.Handler {
	return func(ctx context.Context, job *worker.Job) (map[string]any, error) {
		if err := job.Progress(50, "go halfway"); err != nil {
			return nil, err
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		record, err := job.Artifact("echo.txt", []byte("go:"+job.ID+":"+job.Key), worker.WithMediaType("text/plain"))
		if err != nil {
			return nil, err
		}
		return map[string]any{"worker": workerID, "key": job.Key, "sdk": "go", "artifact_digest": record.Digest}, nil
	}
}

func registerDemo(w *worker.Worker, upstream string) {
	client := &http.Client{Timeout: 10 * time.Second}
	fetch := func(kind string) worker.Handler {
		return func(ctx context.Context, job *worker.Job) (map[string]any, error) {
			host := hosts[fmt.Sprint(job.Payload["feed"])]
			window := int(toFloat(job.Payload["window"]))
			u := fmt.Sprintf("%s/%s/%s?window=%d", upstream, host, kind, window)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return nil, err
			}
			resp, err := client.Do(req)
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				return nil, err
			}
			switch {
			case resp.StatusCode == http.StatusTooManyRequests:
				secs, _ := strconv.ParseFloat(resp.Header.Get("Retry-After"), 64)
				return nil, worker.UpstreamThrottled(host+" throttled "+kind, time.Duration(max(secs, 1)*float64(time.Second)))
			case resp.StatusCode >= 500:
				return nil, worker.UpstreamUnavailable(fmt.Sprintf("%s answered %d for %s", host, resp.StatusCode, kind))
			}
			var doc struct {
				Items []json.RawMessage `json:"items"`
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				return nil, worker.ParseError(fmt.Sprintf("%s sent malformed JSON for window %d: %v", host, window, err))
			}
			_ = job.Progress(100, fmt.Sprintf("%d items", len(doc.Items)))
			if _, err := job.Artifact(fmt.Sprintf("%s-%d.json", kind, window), body, worker.WithMediaType("application/json")); err != nil {
				return nil, err
			}
			return map[string]any{"items": len(doc.Items)}, nil
		}
	}
	must(w.Handle("advisory.ingest", fetch("advisories")))
	must(w.Handle("vex.ingest", fetch("vex")))
	must(w.Handle("sbom.scan", func(ctx context.Context, job *worker.Job) (map[string]any, error) {
		sbom, _ := json.Marshal(map[string]any{"window": job.Payload["window"], "components": 42})
		if _, err := job.Artifact("sbom.cdx.json", sbom, worker.WithMediaType("application/vnd.cyclonedx+json")); err != nil {
			return nil, err
		}
		return map[string]any{"components": 42}, nil
	}))
	must(w.Handle("policy.evaluate", func(ctx context.Context, job *worker.Job) (map[string]any, error) {
		canonical, err := worker.CanonicalJSON(job.Payload)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(canonical)
		return map[string]any{"verdict": "pass", "digest": hex.EncodeToString(sum[:])[:16]}, nil
	}))
}

func toFloat(v any) float64 {
	f, _ := v.(float64)
	return f
}

func must(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "worker:", err)
	os.Exit(1)
}
