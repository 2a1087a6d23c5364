x = "${a}" 
b = <<-EOT
    Foo
      Bar
  EOT
