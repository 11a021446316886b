package state_test

import (
	"github.com/outrigger/outrigger/proxy/grpcapi"
	"github.com/outrigger/outrigger/proxy/httpapi"
	"github.com/outrigger/outrigger/proxy/state"
)

// The block plugs into both API servers.
var (
	_ grpcapi.StateServer    = (*state.API)(nil)
	_ httpapi.RouteRegistrar = (*state.API)(nil)
)
