# gossip: filled in as the module lands
