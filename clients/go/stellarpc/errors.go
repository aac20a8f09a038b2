package stellarpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors; test with errors.Is. An *RPCError matches the one its status maps to
// (RPCError.Is), and a client-side check wraps the one it failed.
var (
	// ErrPermission: the token was refused (UNAUTHENTICATED or PERMISSION_DENIED).
	ErrPermission = errors.New("stella: permission denied")
	// ErrInvalid: the server (or the client) refused an argument (INVALID_ARGUMENT).
	ErrInvalid = errors.New("stella: invalid argument")
	// ErrLeaseLost: a job's lease is no longer current; its result would be refused.
	ErrLeaseLost = errors.New("stella: lease lost")
	// ErrNotFound: the named resource does not exist in the caller's tenant (NOT_FOUND).
	ErrNotFound = errors.New("stella: not found")
	// ErrAlreadyExists: a resource with the same unique name exists (ALREADY_EXISTS).
	ErrAlreadyExists = errors.New("stella: already exists")
	// ErrFailedPrecondition: the resource is not in a state that allows the call, e.g.
	// replaying a job that is not dead (FAILED_PRECONDITION).
	ErrFailedPrecondition = errors.New("stella: failed precondition")
	// ErrResourceExhausted: a quota refused the call; RPCError.RetryDelay says when to try
	// again (RESOURCE_EXHAUSTED).
	ErrResourceExhausted = errors.New("stella: resource exhausted")
	// ErrAborted: a concurrent change won, e.g. a stale version on update (ABORTED).
	ErrAborted = errors.New("stella: aborted")
	// ErrUnavailable: the server could not be reached or is shutting down (UNAVAILABLE).
	ErrUnavailable = errors.New("stella: unavailable")
)

// LeaseLostReasons are the ack/ErrorInfo reasons that mean the lease is gone.
var LeaseLostReasons = map[string]bool{"lease_lost": true, "not_found": true, "already_completed": true}

// Error kinds of StatusKind (shared with the Python and Rust SDKs: tests/vectors/errors.json).
const (
	KindPermission = "permission"
	KindInvalid    = "invalid"
	KindLeaseLost  = "lease_lost"
	KindTransient  = "transient"
)

// StatusKind classifies a gRPC status: permission and invalid cannot be fixed by retrying,
// lease_lost concerns one job, anything else is transient (a reconnect may help).
func StatusKind(code codes.Code, reason string) string {
	switch {
	case code == codes.Unauthenticated || code == codes.PermissionDenied:
		return KindPermission
	case code == codes.InvalidArgument:
		return KindInvalid
	case LeaseLostReasons[reason]:
		return KindLeaseLost
	}
	return KindTransient
}

// FieldViolation is one entry of a google.rpc.BadRequest detail: which request field was
// refused and why.
type FieldViolation struct {
	Field       string // path of the field, e.g. "jobs[1].depends_on"
	Description string // what is wrong and how to fix it
}

// PreconditionViolation is one entry of a google.rpc.PreconditionFailure detail.
type PreconditionViolation struct {
	Type        string // e.g. "JOB_STATE"
	Subject     string // what it concerns, e.g. "job/0192..."
	Description string // what is wrong
}

// RPCError is a gRPC call that failed (for the worker: with a status it does not retry, or
// whose retries ran out), with the google.rpc details of its status unpacked.
type RPCError struct {
	Code    codes.Code // the gRPC status code
	Message string     // the status message (precise: it says how to fix the call)
	// Reason is google.rpc.ErrorInfo.reason (e.g. "RUN_NOT_FAILED", "lease_lost"), or "".
	Reason string
	// Metadata is google.rpc.ErrorInfo.metadata (e.g. the request_id of an INTERNAL error).
	Metadata map[string]string
	// FieldViolations come from google.rpc.BadRequest (INVALID_ARGUMENT).
	FieldViolations []FieldViolation
	// PreconditionViolations come from google.rpc.PreconditionFailure (FAILED_PRECONDITION).
	PreconditionViolations []PreconditionViolation
	// ResourceType and ResourceName come from google.rpc.ResourceInfo (NOT_FOUND).
	ResourceType, ResourceName string
	// RetryDelay is google.rpc.RetryInfo.retry_delay (RESOURCE_EXHAUSTED); 0 when absent.
	RetryDelay time.Duration
	// Details holds every detail message of the status (including those above).
	Details []any
}

// Error is "stella: <code>: <message> (<reason>)"; the servers' messages already name the
// refused fields, so the details are not repeated.
func (e *RPCError) Error() string {
	text := fmt.Sprintf("stella: %s: %s", e.Code, e.Message)
	if e.Reason != "" {
		text += " (" + e.Reason + ")"
	}
	return text
}

// Kind is StatusKind of the error.
func (e *RPCError) Kind() string { return StatusKind(e.Code, e.Reason) }

// Is lets errors.Is match the sentinel of the error's kind (ErrPermission, ErrInvalid,
// ErrLeaseLost) or code (ErrNotFound, ErrAlreadyExists, ErrFailedPrecondition,
// ErrResourceExhausted, ErrAborted, ErrUnavailable), and context.Canceled or
// context.DeadlineExceeded for CANCELLED and DEADLINE_EXCEEDED.
func (e *RPCError) Is(target error) bool {
	switch e.Kind() {
	case KindPermission:
		return target == ErrPermission
	case KindInvalid:
		return target == ErrInvalid
	case KindLeaseLost:
		if target == ErrLeaseLost {
			return true
		}
	}
	return codeSentinels[e.Code] == target
}

var codeSentinels = map[codes.Code]error{
	codes.NotFound:           ErrNotFound,
	codes.AlreadyExists:      ErrAlreadyExists,
	codes.FailedPrecondition: ErrFailedPrecondition,
	codes.ResourceExhausted:  ErrResourceExhausted,
	codes.Aborted:            ErrAborted,
	codes.Unavailable:        ErrUnavailable,
	codes.Canceled:           context.Canceled,
	codes.DeadlineExceeded:   context.DeadlineExceeded,
}

// Retryable reports whether trying again may help (anything but permission and invalid).
func (e *RPCError) Retryable() bool {
	k := e.Kind()
	return k != KindPermission && k != KindInvalid
}

// FromError turns the error of a gRPC call into an *RPCError (nil stays nil; an
// *RPCError is returned as is). A context error becomes CANCELLED or DEADLINE_EXCEEDED;
// an error that carries no status becomes UNAVAILABLE.
func FromError(err error) *RPCError {
	if err == nil {
		return nil
	}
	var already *RPCError
	if errors.As(err, &already) {
		return already
	}
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
		if st.Code() == codes.Unknown {
			return &RPCError{Code: codes.Unavailable, Message: err.Error()}
		}
	}
	out := &RPCError{Code: st.Code(), Message: st.Message()}
	for _, d := range st.Details() {
		out.Details = append(out.Details, d)
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			out.Reason, out.Metadata = d.GetReason(), d.GetMetadata()
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				out.FieldViolations = append(out.FieldViolations, FieldViolation{v.GetField(), v.GetDescription()})
			}
		case *errdetails.PreconditionFailure:
			for _, v := range d.GetViolations() {
				out.PreconditionViolations = append(out.PreconditionViolations, PreconditionViolation{v.GetType(), v.GetSubject(), v.GetDescription()})
			}
		case *errdetails.ResourceInfo:
			out.ResourceType, out.ResourceName = d.GetResourceType(), d.GetResourceName()
		case *errdetails.RetryInfo:
			out.RetryDelay = d.GetRetryDelay().AsDuration()
		}
	}
	return out
}
