"""The offline kit: Claid emulator, local AWS stack, Lambda runner and the backdrop CLI. Never deployed."""
