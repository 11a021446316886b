//go:build race

package main

// raceEnabled relaxes the timing assertions: the race detector slows
// everything several times over.
const raceEnabled = true
