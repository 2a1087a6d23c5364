# jobspec: filled in as the module lands
