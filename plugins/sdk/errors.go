package sdk

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors a store returns (directly or wrapped with fmt.Errorf("…: %w", err));
// the SDK maps them to the wire exactly as Dapr's pluggable components do.
var (
	// ErrETagMismatch: the etag given does not match the stored one, or
	// first-write found an existing key. Wire: FailedPrecondition with a
	// google.rpc.BadRequest field violation on "etag".
	ErrETagMismatch = errors.New("possible etag mismatch: error when updating or deleting a state with an etag")
	// ErrETagInvalid: the etag given is malformed for this store. Wire:
	// InvalidArgument with the same BadRequest detail.
	ErrETagInvalid = errors.New("invalid etag value")
)

// etagField is the BadRequest field violation Dapr's host looks for.
const etagField = "etag"

// wireError maps a store error to the gRPC status daprd expects. This is the
// only place the mapping lives.
func wireError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already a status (e.g. from the SDK itself)
	}
	switch {
	case errors.Is(err, ErrETagMismatch):
		return etagStatus(codes.FailedPrecondition, err)
	case errors.Is(err, ErrETagInvalid):
		return etagStatus(codes.InvalidArgument, err)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

func etagStatus(code codes.Code, err error) error {
	st := status.New(code, err.Error())
	detailed, derr := st.WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{
			Field:       etagField,
			Description: err.Error(),
		}},
	})
	if derr != nil {
		return st.Err()
	}
	return detailed.Err()
}
