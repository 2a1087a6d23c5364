job "web" {
  region    = "eu"
  namespace = "apps"

  task "solo" {
    driver = "exec"
    config {
      command = "/bin/true"
    }
  }

  group "frontend" {
    count          = 2
    shutdown_delay = "5s"

    network {
      mode = "bridge"
      port "http" {
        static = 8080
        to     = 80
      }
      port "metrics" {}
      port "admin" {
        host_network = "private"
      }
    }

    task "nginx" {
      driver = "docker"
      config {
        image = "nginx"
        labels = {
          app = "web"
        }
        mount {
          type   = "bind"
          target = "/etc/nginx"
        }
        mount {
          type = "tmpfs"
        }
        port_map {
          http = 80
        }
      }
      restart {
        attempts = 5
        delay    = 2000000000
      }
    }
  }
}
