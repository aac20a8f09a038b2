package stellarpc

import (
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// roundRobin makes a channel spread its calls (each Work stream) over every address its
// target resolves to, skipping those that are down; gRPC's default, pick_first, would
// send everything to the first address that answers.
const roundRobin = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// listScheme names the resolver of a comma-separated target; it is registered on the
// connection only (grpc.WithResolvers), never globally.
const listScheme = "stella-list"

// dialTarget turns a worker target into what grpc.NewClient dials, plus the dial options it
// needs. Accepted forms (the same in the Python and Rust SDKs):
//
//   - "host:port": one address (grpc-go resolves it with DNS, every address is used);
//   - "host1:port1,host2:port2": a fixed list of replicas (also "ipv4:a:p,b:p" and
//     "ipv6:[a]:p,[b]:p", the gRPC core spelling);
//   - a gRPC name URI, passed through: "dns:///leases.orch.svc:50052" (every address of the
//     name, re-resolved when a connection fails: a Kubernetes headless Service).
//
// Every form balances round_robin.
func dialTarget(target string) (string, []grpc.DialOption, error) {
	target = strings.TrimSpace(target)
	if target == "" {
		return "", nil, fmt.Errorf("%w: empty target", ErrInvalid)
	}
	opts := []grpc.DialOption{grpc.WithDefaultServiceConfig(roundRobin)}
	list := target
	for _, prefix := range []string{"ipv4:", "ipv6:"} {
		list = strings.TrimPrefix(list, prefix)
	}
	if list == target && (!strings.Contains(target, ",") || strings.Contains(target, "://")) {
		return target, opts, nil
	}
	var endpoints []resolver.Endpoint
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if _, _, err := net.SplitHostPort(entry); err != nil {
			return "", nil, fmt.Errorf("%w: target entry %q is not host:port", ErrInvalid, entry)
		}
		endpoints = append(endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: entry}}})
	}
	r := manual.NewBuilderWithScheme(listScheme)
	r.InitialState(resolver.State{Endpoints: endpoints})
	return listScheme + ":///replicas", append(opts, grpc.WithResolvers(r)), nil
}
