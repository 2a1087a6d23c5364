# exec: filled in as the module lands
