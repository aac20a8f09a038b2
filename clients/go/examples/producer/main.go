// Command producer is an example producer for Stella Orchestrator: it creates a run whose
// five jobs form a small DAG, shows that its idempotency key makes a repeated create return
// the same run, waits for the run to end, then reads the run's job.succeeded events back
// with WatchEvents and prints one JSON line:
//
//	{"run_id": "...", "state": "succeeded", "existing_on_retry": true,
//	 "succeeded_order": ["fetch", "parse", "index-a", "index-b", "publish"], "jobs": {"fetch": "<id>", ...}}
//
// The DAG is fetch -> parse -> (index-a, index-b) -> publish, with job types
// <prefix>.fetch, <prefix>.parse, <prefix>.index and <prefix>.publish. Against `make up`,
// with the example Go worker serving those types:
//
//	TOKEN=$(.venv/bin/stella orchestrator token mint --tenant demo --scopes orch:work)
//	go run ./examples/worker -target 127.0.0.1:50052 -token "$TOKEN" -types demo.dag.fetch,demo.dag.parse,demo.dag.index,demo.dag.publish
//	OPERATOR=$(.venv/bin/stella orchestrator token mint --tenant demo --scopes orch:read,orch:operate)
//	go run ./examples/producer -target 127.0.0.1:50051 -token "$OPERATOR" -prefix demo.dag
//
// It exits 1 when the run does not succeed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
	"github.com/stella-ops/orchestrator/clients/go/producer"
)

type report struct {
	RunID           string            `json:"run_id"`
	State           string            `json:"state"`
	ExistingOnRetry bool              `json:"existing_on_retry"`
	SucceededOrder  []string          `json:"succeeded_order"`
	Jobs            map[string]string `json:"jobs"`
}

func main() {
	target := flag.String("target", "127.0.0.1:50051", "scheduler service: host:port, a comma list of replicas, or dns:///name:port")
	token := flag.String("token", os.Getenv("STELLA_TOKEN"), "token with scopes orch:read and orch:operate; default $STELLA_TOKEN")
	tlsCA := flag.String("tls-ca", os.Getenv("STELLA_TLS_CA_FILE"), "PEM CA file: connect over TLS trusting it (unset: plaintext)")
	prefix := flag.String("prefix", "demo.dag", "prefix of the job types")
	key := flag.String("idempotency-key", "", "idempotency key of the run (default: a new one per invocation)")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Parse()
	if *key == "" {
		*key = fmt.Sprintf("%s-%d", *prefix, time.Now().UnixNano())
	}
	opts := []producer.Option{producer.WithToken(*token)}
	if *tlsCA != "" {
		opts = append(opts, producer.WithTLSCAFile(*tlsCA))
	}
	p, err := producer.New(*target, opts...)
	if err != nil {
		fail(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	out, err := run(ctx, p, *prefix, *key)
	if err != nil {
		fail(err)
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
	if out.State != "succeeded" {
		os.Exit(1)
	}
}

// dag describes the run: fetch -> parse -> (index-a, index-b) -> publish.
func dag(prefix, key string) *producer.Run {
	run := producer.NewRun("producer example").IdempotencyKey(key).Label("example", "go-producer")
	parse := run.Job("fetch", prefix+".fetch", producer.Payload(map[string]any{"page": 1})).
		Then("parse", prefix+".parse")
	a := parse.Then("index-a", prefix+".index", producer.Payload(map[string]any{"shard": "a"}))
	b := parse.Then("index-b", prefix+".index", producer.Payload(map[string]any{"shard": "b"}))
	run.Job("publish", prefix+".publish", producer.Priority(10)).After(a, b)
	return run
}

func run(ctx context.Context, p *producer.Producer, prefix, key string) (*report, error) {
	created, err := p.CreateRun(ctx, dag(prefix, key))
	if errors.Is(err, producer.ErrPermission) {
		return nil, fmt.Errorf("the token was refused (it needs orch:operate): %w", err)
	}
	if err != nil {
		return nil, err
	}
	// The same idempotency key again: the first run comes back, nothing new is created.
	again, err := p.CreateRun(ctx, dag(prefix, key))
	if err != nil {
		return nil, err
	}
	out := &report{RunID: created.Run.GetId(), ExistingOnRetry: again.Existing && again.Run.GetId() == created.Run.GetId(), Jobs: map[string]string{}}
	keyOf := map[string]string{}
	for _, job := range created.Jobs {
		out.Jobs[job.GetKey()] = job.GetId()
		keyOf[job.GetId()] = job.GetKey()
	}
	done, err := p.WaitRun(ctx, out.RunID)
	if err != nil {
		return nil, err
	}
	out.State = stateLabel(done.GetState())
	// Replay the run's history from the start: one job.succeeded per job, in commit order.
	if done.GetState() == pb.RunState_RUN_STATE_SUCCEEDED {
		filter := producer.EventFilter{RunID: out.RunID, Types: []string{"job.succeeded"}}
		for ev, err := range p.WatchEvents(ctx, producer.FromOldest, filter) {
			if err != nil {
				return nil, err
			}
			out.SucceededOrder = append(out.SucceededOrder, keyOf[ev.GetJob().GetId()])
			if len(out.SucceededOrder) == len(created.Jobs) {
				break
			}
		}
	}
	return out, nil
}

// stateLabel is the lower-case state name without its prefix, as REST and the Console show it.
func stateLabel(s pb.RunState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "RUN_STATE_"))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "producer:", err)
	os.Exit(2)
}
