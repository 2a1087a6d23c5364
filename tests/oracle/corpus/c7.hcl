job 1 {
}