package main

// The tests run commands in-process: they get the settings main makes.
func init() { processSettings() }
