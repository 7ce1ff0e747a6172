from mlc.cli import console

console()
