package producer

import (
	"errors"
	"slices"
	"strings"
	"testing"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
)

func dependsOn(specs []*pb.JobSpec) map[string][]string {
	out := map[string][]string{}
	for _, s := range specs {
		out[s.GetKey()] = s.GetDependsOn()
	}
	return out
}

func TestRunBuilderChainsThenAndAfterIntoDependsOn(t *testing.T) {
	run := NewRun("nightly").Source("src-1").IdempotencyKey("nightly-1").Label("team", "vuln")
	fetch := run.Job("fetch", "t.fetch", Payload(map[string]any{"page": 1}), Priority(5))
	parse := fetch.Then("parse", "t.parse")
	a := parse.Then("index-a", "t.index")
	b := parse.Then("index-b", "t.index")
	run.Job("publish", "t.publish", IdempotencyKey("pub-1")).After(a, b, a)
	req, err := run.Request()
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{}
	for _, s := range req.GetJobs() {
		keys = append(keys, s.GetKey())
	}
	if !slices.Equal(keys, []string{"fetch", "parse", "index-a", "index-b", "publish"}) {
		t.Errorf("jobs not in the order added: %v", keys)
	}
	want := map[string][]string{"fetch": nil, "parse": {"fetch"}, "index-a": {"parse"}, "index-b": {"parse"}, "publish": {"index-a", "index-b"}}
	for key, parents := range dependsOn(req.GetJobs()) {
		if !slices.Equal(parents, want[key]) {
			t.Errorf("%s depends on %v, want %v", key, parents, want[key])
		}
	}
	if req.GetName() != "nightly" || req.GetSourceId() != "src-1" || req.GetIdempotencyKey() != "nightly-1" || req.GetLabels()["team"] != "vuln" {
		t.Errorf("run fields: %v", req)
	}
	if s := req.GetJobs()[0]; s.GetPriority() != 5 || s.GetPayload().GetFields()["page"].GetNumberValue() != 1 {
		t.Errorf("fetch spec: %v", s)
	}
	if req.GetJobs()[4].GetIdempotencyKey() != "pub-1" {
		t.Errorf("publish spec: %v", req.GetJobs()[4])
	}
	// The builder stays reusable: a second Request is the same, not doubled.
	again, _ := run.Request()
	if got := dependsOn(again.GetJobs())["publish"]; !slices.Equal(got, want["publish"]) {
		t.Errorf("second Request: publish depends on %v", got)
	}
}

func TestGraphRefusesDuplicatesMissingTypesAndCycles(t *testing.T) {
	run := NewRun("bad")
	run.Job("a", "t")
	run.Job("a", "t")
	run.Job("b", "")
	_, err := run.Request()
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `job key "a" is used twice`) || !strings.Contains(err.Error(), `job "b" needs a job type`) {
		t.Errorf("Request = %v", err)
	}

	cyclic := NewRun("cycle")
	a := cyclic.Job("a", "t")
	b := a.Then("b", "t")
	c := b.Then("c", "t")
	a.After(c)
	_, err = cyclic.Request()
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("Request = %v", err)
	}
	// The message names the cycle's jobs.
	for _, key := range []string{"a", "b", "c"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("cycle error %q does not name %s", err, key)
		}
	}

	other := NewRun("other")
	foreign := other.Job("x", "t")
	mixed := NewRun("mixed")
	mixed.Job("y", "t").After(foreign)
	if _, err := mixed.Request(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "same graph") {
		t.Errorf("a parent from another graph: %v", err)
	}
	if _, err := NewRun("empty").Request(); !errors.Is(err, ErrInvalid) {
		t.Errorf("an empty run: %v", err)
	}
	bad := NewRun("payload")
	bad.Job("p", "t", Payload(map[string]any{"ch": make(chan int)}))
	if _, err := bad.Request(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "payload") {
		t.Errorf("an unencodable payload: %v", err)
	}
}

func TestBatchKeepsKeysOfTheTargetRunAndTemplateKeepsTheDag(t *testing.T) {
	batch := NewBatch().InRun("run-1")
	batch.Job("late", "t", AfterKeys("fetch")).Then("later", "t")
	specs, err := batch.Specs()
	if err != nil {
		t.Fatal(err)
	}
	if got := dependsOn(specs); !slices.Equal(got["late"], []string{"fetch"}) || !slices.Equal(got["later"], []string{"late"}) {
		t.Errorf("batch depends_on: %v", got)
	}
	run := NewRun("fire {fire_time}").Project("p")
	run.Job("a", "t").Then("b", "t")
	tpl, err := run.Template()
	if err != nil {
		t.Fatal(err)
	}
	if tpl.GetName() != "fire {fire_time}" || tpl.GetProject() != "p" || !slices.Equal(dependsOn(tpl.GetJobs())["b"], []string{"a"}) {
		t.Errorf("template: %v", tpl)
	}
}
