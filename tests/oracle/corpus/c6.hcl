job "x"
{
}