x = <<EOT
abc