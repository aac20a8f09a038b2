package producer_test

import (
	"fmt"

	"github.com/stella-ops/orchestrator/clients/go/producer"
)

// A run's DAG is built by key: Then adds a child, After adds parents (fan-in). Request
// checks it and gives the CreateRun request that Producer.CreateRun sends.
func ExampleNewRun() {
	run := producer.NewRun("nvd nightly").IdempotencyKey("nvd-2026-12-04")
	parse := run.Job("fetch", "nvd.fetch", producer.Payload(map[string]any{"page": 1})).
		Then("parse", "nvd.parse")
	a := parse.Then("index-a", "nvd.index")
	b := parse.Then("index-b", "nvd.index")
	run.Job("publish", "nvd.publish", producer.Priority(10)).After(a, b)

	req, err := run.Request()
	if err != nil {
		panic(err)
	}
	for _, job := range req.GetJobs() {
		fmt.Println(job.GetKey(), "after", job.GetDependsOn())
	}
	// Output:
	// fetch after []
	// parse after [fetch]
	// index-a after [parse]
	// index-b after [parse]
	// publish after [index-a index-b]
}

// A cycle is refused before anything is sent, with the jobs it goes through.
func ExampleGraph_Specs() {
	run := producer.NewRun("cyclic")
	a := run.Job("a", "t")
	c := a.Then("b", "t").Then("c", "t")
	a.After(c)
	_, err := run.Request()
	fmt.Println(err)
	// Output: stella: invalid argument: the jobs form a cycle: a -> c -> b -> a
}
