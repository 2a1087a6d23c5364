#include <stdio.h>
int main(void)
{
    puts("caravan");
    return 0;
}
