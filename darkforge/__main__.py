from darkforge.cli import main

main()
