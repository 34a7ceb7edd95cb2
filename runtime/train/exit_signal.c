/*
 * exit_signal.c - records SIGTERM / SIGUSR1 for the trainer (exit_signal.h).
 */
#include "exit_signal.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t received = 0;

static void on_signal(int sig)
{
    received = sig;
}

int tsr_exit_signal_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* blocking calls in MPI and I/O carry on */
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGUSR1, &sa, NULL) != 0)
        return -1;
    return 0;
}

int tsr_exit_signal_received(void)
{
    return received;
}
