package syslog

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/logbox/logbox/appliance/ingest"
)

// serveUDP reads datagrams until ctx ends, one message each, and hands
// them on in batches without waiting for their ack (Acceptor.Send: UDP
// has no way to hold a sender back, so nothing would be gained). At
// shutdown it reads what the kernel still holds, then closes pc.
func (s *Server) serveUDP(ctx context.Context, pc *net.UDPConn) {
	defer pc.Close()
	buf := make([]byte, 64<<10)
	var (
		batch    []ingest.Line
		due      time.Time
		lastAddr netip.Addr
		lastPeer string
		drainEnd time.Time
	)
	send := func() {
		if len(batch) > 0 {
			s.acc.Send(batch)
			clear(batch)
			batch = batch[:0]
		}
	}
	defer send()
	for {
		now := time.Now()
		var deadline time.Time
		switch {
		case !drainEnd.IsZero():
			if now.After(drainEnd) {
				return
			}
			deadline = now.Add(drainQuiet)
		case len(batch) > 0:
			if !now.Before(due) {
				send()
				continue
			}
			deadline = due
		}
		_ = pc.SetReadDeadline(deadline)
		if drainEnd.IsZero() && ctx.Err() != nil {
			drainEnd = now.Add(drainReads)
			continue
		}
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				if !drainEnd.IsZero() {
					return
				}
				send()
				continue
			case errors.Is(err, net.ErrClosed):
				return
			default:
				// A passing error (an ICMP report on Linux); not the
				// socket's end.
				s.log.Debug("UDP read failed", "err", err)
				continue
			}
		}
		s.datagrams.Add(1)
		s.dgramBytes.Add(uint64(n))
		if a := from.Addr(); a != lastAddr || lastPeer == "" {
			lastAddr, lastPeer = a, a.Unmap().String()
		}
		msg := buf[:n]
		for len(msg) > 0 && (msg[len(msg)-1] == '\n' || msg[len(msg)-1] == '\r' || msg[len(msg)-1] == 0) {
			msg = msg[:len(msg)-1]
		}
		switch {
		case len(msg) == 0:
			s.drops.Add(1)
			s.acc.Reject(1, "syslog from "+lastPeer+": empty datagram")
			continue
		case len(msg) > s.cfg.MaxFrame:
			s.drops.Add(1)
			s.acc.Reject(1, "syslog from "+lastPeer+": datagram over the message size limit")
			continue
		}
		if len(batch) == 0 {
			due = time.Now().Add(s.cfg.BatchWait)
		}
		batch = append(batch, message(msg, lastPeer, nil))
		if len(batch) >= s.cfg.BatchLines {
			send()
		}
	}
}
