// A raw_exec batch job with variables, locals, constraints, env/meta in both forms,
// a heredoc template and durations.
variable "alloc_count" {
  type    = number
  default = 3
}

variable "message" {
  type    = string
  default = "hello"
}

locals {
  greeting = "${upper(var.message)} from ${NOMAD_ALLOC_ID}"
}

job "batch-raw" {
  type        = "batch"
  datacenters = ["dc1", "dc2"]
  priority    = 70
  node_pool   = "default"

  meta = {
    "owner.team" = "infra"
    version      = 2
  }

  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }

  constraint {
    distinct_hosts = true
  }

  reschedule {
    attempts  = 1
    interval  = "24h"
    delay     = "5s"
    unlimited = false
  }

  group "work" {
    count = var.alloc_count

    constraint {
      attribute = "${meta.rack}"
      operator  = "regexp"
      value     = "r[0-9]+"
    }

    constraint {
      attribute = "${attr.nomad.version}"
      version   = ">= 1.6"
    }

    task "run" {
      driver       = "raw_exec"
      kill_timeout = "20s"
      kill_signal  = "SIGINT"

      config {
        command = "/bin/sh"
        args    = ["-c", local.greeting, "${NOMAD_TASK_DIR}/run.sh"]
      }

      env {
        GREETING = local.greeting
        PORT     = "${NOMAD_PORT_http}"
        COUNT    = 3
      }

      template {
        destination = "local/run.sh"
        data        = <<-EOT
          #!/bin/sh
          echo "${var.message}" $${HOME}
        EOT
      }

      lifecycle {
        hook = "prestart"
      }

      logs {
        max_files     = 3
        max_file_size = 5
      }

      resources {
        cpu        = 100
        memory     = 64
        memory_max = 128
      }
    }
  }
}
