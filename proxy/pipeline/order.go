package pipeline

// Entry is one position in the chain.
type Entry struct {
	Name   string
	Reason string
}

// order is THE filter order. Each filter sees everything after it and must not
// depend on what ran before it, except as listed here. The router is terminal:
// it resolves the target (an app id through discovery, or a component) and is
// where resiliency wraps the call to that target.
var order = []Entry{
	{"recover", "first, so a panic anywhere below becomes a 500 / Internal and never kills the sidecar"},
	{"accesslog", "before everything that can reject, so rejected calls are logged too"},
	{"tracing", "opens the server span early so later filters' time is inside it"},
	{"metrics", "inside the span, outside auth: counts and times every call including denied ones"},
	{"apitoken", "rejects calls without the DAPR_API_TOKEN before any work is done"},
	{"allowlist", "after auth: Configuration spec.api removes routes; denied ones fall to 404"},
	{"middleware", "user httpPipeline middleware sees only authenticated, allowed calls"},
	{"router", "terminal: routes to the building block, which resolves the target"},
}

// Terminal is the name of the last, terminal entry.
const Terminal = "router"

// Order returns the chain's entries, first to last.
func Order() []Entry {
	out := make([]Entry, len(order))
	copy(out, order)
	return out
}
