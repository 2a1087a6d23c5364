# raft: filled in as the module lands
