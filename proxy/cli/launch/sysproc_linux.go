package launch

import "syscall"

// sysProcAttr puts the child in its own process group (so Ctrl-C reaches
// only us and we stop children in order) and has the kernel SIGTERM it if
// we die without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
