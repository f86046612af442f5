from shop.app import main

main()
