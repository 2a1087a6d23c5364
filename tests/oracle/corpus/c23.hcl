x = "x
y"