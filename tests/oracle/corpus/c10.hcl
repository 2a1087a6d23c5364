a { b = "foo"
}