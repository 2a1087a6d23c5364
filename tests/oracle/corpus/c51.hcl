x = -5
y = !true
z = "${1}"
w="${true}"