//go:build !linux

package journald

import "syscall"

// procAttr: only Linux has a parent-death signal; elsewhere (where there
// is no journal to follow) journalctl ends on its next write.
func procAttr() *syscall.SysProcAttr { return nil }
