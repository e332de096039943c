module example.com/nonfinite

go 1.26
