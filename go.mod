module github.com/filesession/filesession

go 1.26
