# state: filled in as the module lands
