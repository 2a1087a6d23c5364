job "x" = {
}