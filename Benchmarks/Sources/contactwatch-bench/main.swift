print("contactwatch-bench: written by the benchmark engineer")
