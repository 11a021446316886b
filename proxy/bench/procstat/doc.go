// Package procstat reads a process's CPU time and memory from Linux /proc, for the benchmark harness.
//
// The harness snapshots CPU (utime+stime from /proc/<pid>/stat) of the processes under test before
// and after a measured interval and divides the difference by the requests served; memory figures
// (VmRSS, VmHWM) come from /proc/<pid>/status. Nothing here is cached: every call reads /proc afresh.
package procstat
