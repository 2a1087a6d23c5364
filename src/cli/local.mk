# cli: filled in as the module lands
