package host

import (
	"net"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// peerPID records the process id at the other end of a unix socket
// (SO_PEERCRED), for PluginStatus.PID of attached plugins.
type peerPID struct{ v atomic.Int64 }

func (p *peerPID) record(c net.Conn) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			p.v.Store(int64(cred.Pid))
		}
	})
}

func (p *peerPID) get() int { return int(p.v.Load()) }
