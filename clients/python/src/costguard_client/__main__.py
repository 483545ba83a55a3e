from costguard_client.cli import main

main()
