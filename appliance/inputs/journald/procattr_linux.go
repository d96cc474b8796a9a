package journald

import "syscall"

// procAttr makes the kernel kill journalctl if logbox dies first (a
// SIGKILL leaves no chance to stop it), so no reader is left behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
