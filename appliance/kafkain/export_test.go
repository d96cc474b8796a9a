package kafkain

// Kill cuts every broker connection of c and refuses new ones, as kill -9
// does to a process: the group coordinator sees them close and hears
// nothing more from c (no LeaveGroup, no heartbeat).
func Kill(c *Consumer) { c.conns.cutAll() }
