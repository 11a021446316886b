package appchannel

import (
	"context"
	"io"
	"net/http"

	"google.golang.org/grpc/codes"
)

// Request is one invocation of the app.
type Request struct {
	Method        string // path on the app without the leading slash
	Verb          string // HTTP verb; "" means POST
	Query         string // raw query, without '?'
	Header        http.Header
	Body          io.Reader // nil for no body
	ContentLength int64     // -1 when unknown
}

// Response is the app's answer. The caller must close Body.
type Response struct {
	Status int
	Header http.Header
	Body   io.ReadCloser
	// GRPCCode is set (non-OK) when a gRPC app answered with an error status;
	// Status then holds the HTTP mapping of that code.
	GRPCCode    codes.Code
	GRPCMessage string
}

// Channel delivers invocations to the app.
type Channel interface {
	Invoke(ctx context.Context, req *Request) (*Response, error)
	Close() error
}

// noBody is an empty, closable body.
type noBody struct{}

func (noBody) Read([]byte) (int, error) { return 0, io.EOF }
func (noBody) Close() error             { return nil }

// NoBody is an empty response body.
var NoBody io.ReadCloser = noBody{}
