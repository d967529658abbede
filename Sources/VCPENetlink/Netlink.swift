// The netlink layer: issue 3.
