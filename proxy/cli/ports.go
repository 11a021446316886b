package cli

import (
	"fmt"
	"math/rand/v2"
	"net"
)

// freePorts returns n distinct free TCP ports on loopback. The listeners
// are held until all are picked, so the ports differ from each other.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// randomAppID returns a readable random name such as "brave-otter", as
// `dapr run` does when no app id is given.
func randomAppID() string {
	adjectives := []string{"brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "kind", "lively", "nimble",
		"proud", "quick", "quiet", "rapid", "shiny", "silly", "steady", "swift", "tidy", "witty"}
	nouns := []string{"albatross", "badger", "canoe", "dolphin", "egret", "falcon", "gull", "heron", "ibis", "kayak",
		"lagoon", "marlin", "narwhal", "otter", "pelican", "reef", "seal", "tern", "walrus", "wave"}
	return adjectives[rand.IntN(len(adjectives))] + "-" + nouns[rand.IntN(len(nouns))]
}
