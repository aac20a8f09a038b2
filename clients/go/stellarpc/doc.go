// Package stellarpc is what every Go client of Stella Orchestrator shares: how a target
// string becomes a gRPC connection, the connection options (token, tenant, TLS), and the
// typed errors a failed call becomes. The worker SDK (package worker) and the producer
// client (package producer) both build on it and re-export its names, so
// errors.Is(err, worker.ErrPermission) and errors.Is(err, producer.ErrPermission) test the
// same sentinel and an *RPCError is one type everywhere.
//
// # Design note
//
// Dial is the one place a client connection is made (conn.go): the target forms of
// dialTarget (target.go: host:port, a comma list of replicas, a gRPC name URI) balanced
// round_robin, plaintext unless a TLS option is given, 16 MiB messages, keepalive pings so a
// vanished server is noticed within ~40 s, and a reconnect backoff capped at 10 s. Its
// interceptors put the bearer token (asked for again at every call, so a rotating token
// works) and the tenant header on every unary call and stream: callers never touch
// metadata. FromError (errors.go) is the one place a gRPC status becomes an *RPCError; it
// unpacks the google.rpc details the servers attach (ErrorInfo always; BadRequest,
// PreconditionFailure, ResourceInfo, RetryInfo where they apply; see
// libs/grpckit/orchestrator_grpckit/_status.py).
package stellarpc
