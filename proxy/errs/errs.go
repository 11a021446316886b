package errs

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// Error is an immutable API error: a row plus its rendered message.
type Error struct {
	Row     Row
	Message string
	Meta    map[string]string // optional ErrorInfo metadata
	cause   error
}

// New renders the row's message with args. A trailing error argument is kept as the cause.
func (r Row) New(args ...any) *Error {
	var cause error
	for _, a := range args {
		if e, ok := a.(error); ok {
			cause = e
		}
	}
	msg := r.Format
	if len(args) > 0 {
		msg = fmt.Sprintf(r.Format, args...)
	}
	return &Error{Row: r, Message: msg, cause: cause}
}

func (e *Error) Error() string { return e.Row.Code + ": " + e.Message }
func (e *Error) Unwrap() error { return e.cause }

// WithMeta returns a copy with ErrorInfo metadata added.
func (e *Error) WithMeta(kv ...string) *Error {
	c := *e
	c.Meta = make(map[string]string, len(e.Meta)+len(kv)/2)
	for k, v := range e.Meta {
		c.Meta[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Meta[kv[i]] = kv[i+1]
	}
	return &c
}

type body struct {
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
}

// JSON is the Dapr HTTP error body.
func (e *Error) JSON() []byte {
	b, _ := json.Marshal(body{ErrorCode: e.Row.Code, Message: e.Message})
	return b
}

// WriteHTTP writes err in Dapr's HTTP shape. Any error that is not an *Error is
// reported as the generic 500 ERROR row.
func WriteHTTP(w http.ResponseWriter, err error) {
	e := From(err)
	if e.Row.Code == APIToken.Code {
		// Dapr's one plain-text answer.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(e.Row.HTTP)
		_, _ = w.Write([]byte(e.Message))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Row.HTTP)
	_, _ = w.Write(e.JSON())
}

// From returns err as an *Error, wrapping unknown errors in the generic row.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal.New(err.Error())
}

// GRPC converts err to a gRPC status error carrying a google.rpc.ErrorInfo detail.
func GRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		var e *Error
		if !errors.As(err, &e) {
			return err // already a gRPC status
		}
	}
	e := From(err)
	st := status.New(e.Row.GRPC, e.Message)
	reason := e.Row.Reason
	if reason == "" {
		reason = e.Row.Code
	}
	if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: "dapr.io", Metadata: e.Meta}); derr == nil {
		st = d
	}
	return st.Err()
}
