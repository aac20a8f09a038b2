package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
	"github.com/stella-ops/orchestrator/clients/go/stellarpc"
)

// MaxErrorMessageChars bounds a failure message before it leaves the worker.
const MaxErrorMessageChars = 2000

// ErrorClasses is the one table from error-class labels (the lower-case enum suffixes that
// metrics, REST and the ledger use) to the proto enum.
var ErrorClasses = map[string]pb.ErrorClass{
	"http_429":        pb.ErrorClass_ERROR_CLASS_HTTP_429,
	"http_5xx":        pb.ErrorClass_ERROR_CLASS_HTTP_5XX,
	"http_4xx":        pb.ErrorClass_ERROR_CLASS_HTTP_4XX,
	"timeout":         pb.ErrorClass_ERROR_CLASS_TIMEOUT,
	"parse_error":     pb.ErrorClass_ERROR_CLASS_PARSE_ERROR,
	"schema_mismatch": pb.ErrorClass_ERROR_CLASS_SCHEMA_MISMATCH,
	"lease_expired":   pb.ErrorClass_ERROR_CLASS_LEASE_EXPIRED,
	"worker_crash":    pb.ErrorClass_ERROR_CLASS_WORKER_CRASH,
	"canceled":        pb.ErrorClass_ERROR_CLASS_CANCELED,
	"internal":        pb.ErrorClass_ERROR_CLASS_INTERNAL,
	"other":           pb.ErrorClass_ERROR_CLASS_OTHER,
}

// ErrorClassEnum maps a label (case-insensitive) to the proto enum.
func ErrorClassEnum(label string) (pb.ErrorClass, error) {
	if v, ok := ErrorClasses[strings.ToLower(label)]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("%w: unknown error class %q", ErrInvalid, label)
}

// ErrorClassLabel maps the proto enum to its label; UNSPECIFIED (or unknown) reads "other".
func ErrorClassLabel(v pb.ErrorClass) string {
	for label, value := range ErrorClasses {
		if value == v {
			return label
		}
	}
	return "other"
}

// Sentinel errors; test with errors.Is. An *RPCError matches the one its status maps to, and
// context.Cause of a handler's context is ErrLeaseLost, ErrJobCanceled or ErrDrainTimeout
// when the SDK canceled it. ErrPermission, ErrInvalid and ErrLeaseLost are the sentinels of
// package stellarpc, shared with the producer client.
var (
	// ErrLeaseLost: the job's lease is no longer current (acknowledged as lost, or it ran
	// out without an acknowledged heartbeat); its result would be refused.
	ErrLeaseLost = stellarpc.ErrLeaseLost
	// ErrPermission: the token was refused (UNAUTHENTICATED or PERMISSION_DENIED).
	ErrPermission = stellarpc.ErrPermission
	// ErrInvalid: the server (or the SDK) refused an argument (INVALID_ARGUMENT).
	ErrInvalid = stellarpc.ErrInvalid
	// ErrJobCanceled: the server asked the worker to stop the job (CancelJobs).
	ErrJobCanceled = errors.New("stella worker: job canceled")
	// ErrDrainTimeout: the worker drained and the handler outlived the drain timeout.
	ErrDrainTimeout = errors.New("stella worker: drain timeout")
	// ErrNotInJob: a Job method was called on a Job the SDK did not hand to a handler.
	ErrNotInJob = errors.New("stella worker: not a running job")
)

// LeaseLostReasons are the ack/ErrorInfo reasons that mean the lease is gone.
var LeaseLostReasons = stellarpc.LeaseLostReasons

// Error kinds of StatusKind (shared with the Python and Rust SDKs: tests/vectors/errors.json).
const (
	KindPermission = stellarpc.KindPermission
	KindInvalid    = stellarpc.KindInvalid
	KindLeaseLost  = stellarpc.KindLeaseLost
	KindTransient  = stellarpc.KindTransient
)

// StatusKind classifies a gRPC status: permission and invalid end Run at once (retrying
// cannot fix them), lease_lost concerns one job, anything else is transient (reconnect).
func StatusKind(code codes.Code, reason string) string { return stellarpc.StatusKind(code, reason) }

// RPCError is a gRPC call that failed with a status the SDK does not retry (or whose
// retries ran out); the same type as stellarpc.RPCError and producer.RPCError.
type RPCError = stellarpc.RPCError

// JobError fails the current attempt with a chosen class; return it (or wrap it) from a
// handler. Build it with Fail or one of the Upstream*/ParseError/SchemaMismatch helpers.
type JobError struct {
	Class      string        // a label of ErrorClasses
	Message    string        // no secrets: stored and shown in the Console
	Retryable  bool          // false dead-letters the job
	RetryAfter time.Duration // minimum delay before the next attempt; 0 for none
	Code       string        // machine-readable detail, e.g. "nvd.api_key_invalid"
}

func (e *JobError) Error() string { return fmt.Sprintf("%s: %s", e.Class, e.Message) }

// Fail builds a JobError; an unknown class becomes "other".
func Fail(class, message string, retryable bool) *JobError {
	label := strings.ToLower(class)
	if _, ok := ErrorClasses[label]; !ok {
		label = "other"
	}
	return &JobError{Class: label, Message: message, Retryable: retryable}
}

// UpstreamThrottled: HTTP 429, retryable; retryAfter (the upstream's Retry-After) also
// pauses the source's rate-limit bucket.
func UpstreamThrottled(message string, retryAfter time.Duration) *JobError {
	return &JobError{Class: "http_429", Message: message, Retryable: true, RetryAfter: retryAfter}
}

// UpstreamUnavailable: HTTP 5xx, retryable.
func UpstreamUnavailable(message string) *JobError { return Fail("http_5xx", message, true) }

// UpstreamRejected: HTTP 4xx other than 429, not retryable.
func UpstreamRejected(message string) *JobError { return Fail("http_4xx", message, false) }

// ParseError: the upstream response could not be parsed, not retryable.
func ParseError(message string) *JobError { return Fail("parse_error", message, false) }

// SchemaMismatch: the response parsed but broke the expected schema, not retryable.
func SchemaMismatch(message string) *JobError { return Fail("schema_mismatch", message, false) }

// Classify turns a handler's error into the failure it reports: a JobError keeps its own
// class; a deadline is "timeout" (retryable); anything else is "internal" (retryable: a bug
// may be transient, and the retry policy bounds the attempts).
func Classify(err error) *JobError {
	var je *JobError
	if errors.As(err, &je) {
		return je
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return &JobError{Class: "timeout", Message: err.Error(), Retryable: true}
	}
	return &JobError{Class: "internal", Message: err.Error(), Retryable: true}
}

func (e *JobError) toProto() *pb.JobError {
	class, err := ErrorClassEnum(e.Class)
	if err != nil {
		class = pb.ErrorClass_ERROR_CLASS_OTHER
	}
	message := e.Message
	if len(message) > MaxErrorMessageChars {
		message = truncateUTF8(message, MaxErrorMessageChars)
	}
	out := &pb.JobError{ErrorClass: class, Message: message, Retryable: e.Retryable, Code: e.Code}
	if e.RetryAfter > 0 {
		out.RetryAfter = durationpb.New(e.RetryAfter)
	}
	return out
}

func truncateUTF8(s string, n int) string {
	runes := []rune(s)
	if len(runes) <= n {
		return s
	}
	return string(runes[:n])
}
