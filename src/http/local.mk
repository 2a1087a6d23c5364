# http: filled in as the module lands
