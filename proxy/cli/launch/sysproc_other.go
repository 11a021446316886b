//go:build !linux

package launch

import "syscall"

// sysProcAttr puts the child in its own process group, so Ctrl-C reaches
// only us and we stop children in order.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
